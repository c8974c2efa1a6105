enum _PlaceholderSandbox {}
