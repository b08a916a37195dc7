"""Webhooks: a user's receiver URLs, their secrets, deliveries and redelivery."""
