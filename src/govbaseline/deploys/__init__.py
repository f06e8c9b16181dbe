"""pyinfra deploys: the same controls as the Ansible roles, from the same defaults and templates."""
