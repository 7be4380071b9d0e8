from oversight import load_constitution
c = load_constitution('no/such/file.toml')
