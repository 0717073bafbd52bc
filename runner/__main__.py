"""``python -m runner``. Absolute import and a main guard: worker processes (anyio's
to_process, like multiprocessing) import this module again and must not run the CLI."""

from runner.cli import main

if __name__ == "__main__":
    main()
