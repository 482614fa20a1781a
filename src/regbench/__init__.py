"""regbench: put the claims of a regularization study document to a measured test."""
