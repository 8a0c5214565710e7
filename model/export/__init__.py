"""Export to runtime packages: graphs, the head, the clip model, the frame encoder, the package."""
