"""The shared core every phase builds on: the inventory (model, validation, loading), the journal and
its event kinds, postures and the policies they plan, the playbook runner, the checks (lockout,
critical flows), detection sources, approvals and the error tree. The core imports no phase, no CLI
and not the lab."""
