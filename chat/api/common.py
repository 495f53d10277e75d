"""Request pieces shared by several endpoints."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PageQuery(Strict):
    cursor: str | None = Field(default=None, max_length=80)
    limit: int = Field(default=50, ge=1, le=200)
