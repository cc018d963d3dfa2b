"""Lambda functions of the traffic analytics platform (packaged as this package by the stack)."""
