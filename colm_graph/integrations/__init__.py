"""Ways in from other software: a LangChain chat model, a tool, an OpenAI-compatible server,
LangGraph Server deployment and durable (checkpointed) runs."""

__all__: list[str] = []
