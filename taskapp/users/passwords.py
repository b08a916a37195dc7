"""Password hashing with argon2id (argon2-cffi).

Defaults are argon2-cffi's RFC 9106 low-memory profile (t=3, 64 MiB, p=4), above
OWASP's minimum for argon2id (t=2, 19 MiB, p=1). Tests lower the cost through config.
The cost is a small typed settings object (:class:`PasswordHashing`), built once per
app from its config (``config.FeatureSettings.of``) and passed in by the caller.
"""

from dataclasses import dataclass, field
from functools import cached_property

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from taskapp.config import FeatureSettings


@dataclass(frozen=True)
class PasswordHashing(FeatureSettings):
    time_cost: int
    memory_kib: int
    parallelism: int
    _dummy: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_config(cls, config) -> "PasswordHashing":
        return cls(
            time_cost=config["PASSWORD_HASH_TIME_COST"],
            memory_kib=config["PASSWORD_HASH_MEMORY_KIB"],
            parallelism=config["PASSWORD_HASH_PARALLELISM"],
        )

    @cached_property
    def hasher(self) -> PasswordHasher:
        return PasswordHasher(
            time_cost=self.time_cost, memory_cost=self.memory_kib, parallelism=self.parallelism
        )


def hash_password(hashing: PasswordHashing, password: str) -> str:
    return hashing.hasher.hash(password)


def verify_password(hashing: PasswordHashing, password_hash: str, password: str) -> bool:
    try:
        return hashing.hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(hashing: PasswordHashing, password_hash: str) -> bool:
    return hashing.hasher.check_needs_rehash(password_hash)


def burn_equal_time(hashing: PasswordHashing, password: str) -> None:
    """Spend a verification's worth of CPU so unknown usernames take as long as wrong
    passwords (no username enumeration by timing)."""
    verify_password(hashing, _dummy_hash(hashing), password)


def _dummy_hash(hashing: PasswordHashing) -> str:
    if "hash" not in hashing._dummy:
        hashing._dummy["hash"] = hash_password(hashing, "not-a-real-password")
    return hashing._dummy["hash"]
