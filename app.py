"""`python app.py [--host H] [--port P]` is `rag serve`: the web chat lives in rag/serve/web.py, inside the package."""
import sys

from rag.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
