from windl.cli import main

main()
