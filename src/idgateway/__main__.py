from idgateway.cli import main

raise SystemExit(main())
