"""taskapp on several hosts at once, in network namespaces: ``python -m reliability.cluster``
(see ``__main__.py``). Modules: ``net`` (namespaces, bridge, links), ``hosts`` (what runs
where), ``hooks`` (the webhook receiver), ``workload`` (the clients), ``reconcile`` (the
table)."""
