"""The stack test: the images built and `docker compose up` run on a real engine."""
