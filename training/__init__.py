"""Training, evaluation and data (torch): datasets, window sampling, the training loop,
metrics and reports. Depends on `model`; never imported by `service`."""
