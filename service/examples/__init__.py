"""The examples users teach the service (docs/teach.md): kept per tenant and per model in
the standard feature layout `gad train` reads, their rows computed by the served encoder.

labels   label rules; each row's label from a clip's times; label runs
store    ExampleSet: one tenant's examples of one model, a dataset folder
capture  rows from a clip (the /classify path) or from a live stream's cached window
client   the HTTP client `gad teach` uses
"""
