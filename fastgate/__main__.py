from fastgate.cli import entry

entry()
