"""The user account: every other feature's tables refer to it."""

from datetime import datetime

from sqlalchemy import Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

from taskapp.models import SQLITE_AUTOINCREMENT, Base, Role, UTCDateTime, enum_column, utcnow


class User(Base):
    __tablename__ = "user_account"
    __table_args__ = SQLITE_AUTOINCREMENT
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(150))
    email: Mapped[str] = mapped_column(String(254), default="")
    role: Mapped[Role] = mapped_column(enum_column(Role), default=Role.INTERN)
    is_active: Mapped[bool] = mapped_column(default=True)
    date_joined: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    password_hash: Mapped[str] = mapped_column(String(255))
    token_version: Mapped[int] = mapped_column(default=1)
    """Bumped whenever role, password or is_active change: tokens carrying an older
    version stop working at once."""

    def __repr__(self) -> str:
        return f"<User {self.id} {self.username} {self.role}>"


Index("uq_user_account_username_lower", func.lower(User.username), unique=True)
