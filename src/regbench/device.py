"""Where torch runs: one rule for every study (MLP engine and CNN alike)."""
import torch


def resolve_device(device) -> torch.device:
    """"auto" means CUDA when present, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
