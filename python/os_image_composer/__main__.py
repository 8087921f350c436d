"""Run the command line: ``python -m os_image_composer``."""

from os_image_composer.cli import main

raise SystemExit(main())
