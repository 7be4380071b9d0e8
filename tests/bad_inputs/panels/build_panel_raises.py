def build_panel():
    return {}['critics']
