from starmesh.cli.app import main

main()
