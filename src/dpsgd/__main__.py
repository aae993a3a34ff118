from dpsgd.cli import main

raise SystemExit(main())
