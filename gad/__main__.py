from gad.cli import main

raise SystemExit(main())
