"""``python -m tierwise …``, and a file spark-submit can run:
``spark-submit --master yarn "$(python -c 'import tierwise.__main__ as m; print(m.__file__)')"
grade -w /srv/tierwise``."""

from tierwise.cli import main

if __name__ == "__main__":
    main(prog_name="tierwise")
