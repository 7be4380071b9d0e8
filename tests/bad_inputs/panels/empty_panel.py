from oversight import Panel
panel = Panel([])
