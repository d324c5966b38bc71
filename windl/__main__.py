from windl.cli import main

if __name__ == "__main__":  # not when a process pool re-imports it as __mp_main__
    main()
