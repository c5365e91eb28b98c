"""Putting a device on a site: its key, its registration (gateway and chain), its broker
credentials and the bundle of files it runs with.

``provision.py``      provision, revoke and rotate a device key, keeping the registry, the
                      chain and the broker in step (``device provision|revoke|rotate``);
``enroll.py``         the key is made on the board over its serial REPL, only its public
                      half leaves (``device enroll``);
``keys.py``           device keys made and read on the host (key files, protocols/key_file.py);
``broker_config.py``  a site's Mosquitto: TLS listeners, per-device ACLs, passwords
                      (``broker config``);
``pki.py``            the site CA, broker and client certificates, the CRL.
"""
