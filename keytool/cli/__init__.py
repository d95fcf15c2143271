"""The command line: a declarative command table (spec.py), a fast parser for it
(fastparse.py), the Typer app built from the same table (typer_app.py), and one
module per subcommand holding its ``run``."""
