*ò'‚$
"/var/backups/shoal/coordinator.mdb