"""One module per verb: thin parsers that call library functions."""
