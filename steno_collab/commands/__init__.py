"""One module per subcommand, each exposing `add_parser(subparsers)`; listed in cli.COMMANDS."""
