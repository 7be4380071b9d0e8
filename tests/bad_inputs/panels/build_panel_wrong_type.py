def build_panel():
    return [1, 2]
