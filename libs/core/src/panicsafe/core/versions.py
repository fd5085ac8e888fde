"""Installed versions, for health replies and service identities."""

from importlib.metadata import PackageNotFoundError, version


def package_version(distribution: str) -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "0.0.0"  # nats.micro requires a semantic version
