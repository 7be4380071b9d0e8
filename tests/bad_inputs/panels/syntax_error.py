from oversight import Panel
panel = (
