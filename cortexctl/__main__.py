from cortexctl.cli.main import run

run()
