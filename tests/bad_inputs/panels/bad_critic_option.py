from oversight import Critic, FunctionBackend
from oversight.constitution import builtin
c = Critic(builtin('honesty'), FunctionBackend(lambda x: 'A'), mode='vibes')
