from keytool.cli.app import main

main()
