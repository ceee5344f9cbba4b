from interpreter.cli import console_main

console_main()
