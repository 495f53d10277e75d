"""Bots: the bot API, NLU and the Rasa bridge. Never imports chat or connectors.

```python
from bots import Bot, Context, Regex
```
"""

from bots.context import Context
from bots.entities import Choice, Entity, Found, Regex
from bots.nlu import Classifier, ExampleClassifier, Prediction
from bots.script import Bot, Intent
from bots.turn import Brain, Handoff, TriggerEvent, Turn, TurnMessage, TurnResult

__all__ = [
    "Bot", "Brain", "Choice", "Classifier", "Context", "Entity", "ExampleClassifier", "Found",
    "Handoff", "Intent", "Prediction", "Regex", "TriggerEvent", "Turn", "TurnMessage",
    "TurnResult",
]
