from govbaseline.cli import main

raise SystemExit(main())
