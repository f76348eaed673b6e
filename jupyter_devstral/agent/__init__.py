"""The agent: pure Python, no Jupyter server imports. The loops (``fix``, ``chat_loop``,
``refactor``), what they run and where (``trials``, ``homes``), and what the model sees
(``context``). The same loop behaves the same in the CLI, the magic and the sidebar."""
