from pixelsmith.cli.main import main

main()
