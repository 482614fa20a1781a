rule data:
    """Every seed's dataset of one design, with its truth, and its correlation figure."""
    output:
        data=R + "/data/{design}.npz",
        figure=report(
            R + "/figures/data/{design}.png",
            caption="../report/data.rst",
            category="Data",
            subcategory="{design}",
        ),
    params:
        seeds=lambda w: rbjobs.seeds_needed(config)[w.design],
        settings=design_settings,
        footer=lambda w: footer_template(f"design {w.design}, {rbjobs.seeds_needed(config)[w.design]} seeds stored"),
    resources:
        mem_mb=RESOURCES.data("mem_mb"),
        runtime=RESOURCES.data("runtime"),
    log:
        R + "/logs/data/{design}.log",
    script:
        "../scripts/data.py"
