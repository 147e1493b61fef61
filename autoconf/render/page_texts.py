"""Every text of the page for people, in English and German (the same keys in both)."""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Set up your email",
        "intro": "Type your email address to see the settings for your mail program.",
        "address_label": "Email address",
        "submit": "Show settings",
        "language": "Deutsch",
        "error_intro": "These settings cannot be shown:",
        "settings_for": "Settings for",
        "automatic": (
            "Most mail programs set themselves up: type your address and password, "
            "and they find these settings by themselves."
        ),
        "incoming": "Receiving mail",
        "outgoing": "Sending mail",
        "alternative": "Alternative",
        "col_protocol": "Protocol",
        "col_server": "Server",
        "col_port": "Port",
        "col_security": "Security",
        "col_username": "User name",
        "col_password": "Password",
        "tls_ssl": "SSL/TLS",
        "tls_starttls": "STARTTLS",
        "tls_none": "None (unencrypted)",
        "pw_password-cleartext": "Your email password (normal password)",
        "pw_password-encrypted": "Your email password (encrypted password, CRAM-MD5)",
        "pw_NTLM": "Windows sign-in (NTLM)",
        "pw_GSSAPI": "Kerberos (GSSAPI)",
        "pw_OAuth2": "Sign in with your provider (OAuth2)",
        "pw_TLS-client-cert": "A client certificate",
        "pw_client-IP-address": "None: your network is recognised",
        "pw_none": "None",
        "smtp_auth_note": "Sending needs your user name and password: turn on SMTP authentication.",
        "imap_pop_title": "IMAP or POP3?",
        "imap_pop_text": (
            "IMAP keeps your mail on the server, so every phone and computer shows the same "
            "messages and folders: choose it when you read mail on more than one device. "
            "POP3 downloads mail to one device and removes it from the server; if the mail "
            "must not vanish from the server, turn on “leave a copy on the server”."
        ),
        "clients_title": "Step by step",
        "thunderbird_name": "Thunderbird",
        "thunderbird_steps": (
            "Add a mail account, type your name, address and password: Thunderbird finds "
            "the settings by itself. Check that they match the table above."
        ),
        "outlook_name": "Outlook",
        "outlook_steps": (
            "Add an account with your address: Outlook finds the settings by itself. If it "
            "asks, choose IMAP and type the values from the table above."
        ),
        "apple_name": "Apple Mail (iPhone, iPad, Mac)",
        "apple_steps": (
            "Download the configuration profile, then open Settings and install it; "
            "you type your password once, while installing."
        ),
        "apple_signed": "The profile is signed, so your device shows it as verified.",
        "apple_unsigned": "The profile is not signed, so your device shows “Not Verified”.",
        "apple_link": "Download the profile",
        "apple_qr": "On a phone, scan this code to download the profile.",
        "apple_unavailable": "Apple Mail cannot use this provider automatically: type the values.",
        "android_name": "Android",
        "android_steps": (
            "With Thunderbird for Android or K-9 Mail, type your address and password: the "
            "settings are found by themselves. Other apps: choose IMAP and type the values "
            "from the table above."
        ),
        "problems_title": "If something goes wrong",
        "problem_port25": (
            "Sending fails: many networks block port 25. Use the port in the table "
            "(465 or 587), never 25."
        ),
        "problem_auth": (
            "The server refuses to send: turn on “my outgoing server requires "
            "authentication” (SMTP authentication), with the same user name and password."
        ),
        "problem_tls": (
            "The connection fails or times out: SSL/TLS and STARTTLS are not the same. Choose "
            "exactly the security shown in the table for that port."
        ),
        "problem_pop3": (
            "Mail appears twice, or vanishes from another device: with POP3 on several "
            "devices, turn on “leave a copy on the server” everywhere, or use IMAP."
        ),
        "more_help": "More help from your provider",
        "webmail": "Read mail in the browser",
        "other_address": "Another address",
    },
    "de": {
        "title": "E-Mail einrichten",
        "intro": (
            "Geben Sie Ihre E-Mail-Adresse ein, um die Einstellungen für Ihr "
            "E-Mail-Programm zu sehen."
        ),
        "address_label": "E-Mail-Adresse",
        "submit": "Einstellungen zeigen",
        "language": "English",
        "error_intro": "Diese Einstellungen können nicht gezeigt werden:",
        "settings_for": "Einstellungen für",
        "automatic": (
            "Die meisten E-Mail-Programme richten sich selbst ein: Geben Sie Adresse und "
            "Passwort ein, dann finden sie diese Einstellungen von allein."
        ),
        "incoming": "E-Mails empfangen",
        "outgoing": "E-Mails senden",
        "alternative": "Alternative",
        "col_protocol": "Protokoll",
        "col_server": "Server",
        "col_port": "Port",
        "col_security": "Sicherheit",
        "col_username": "Benutzername",
        "col_password": "Passwort",
        "tls_ssl": "SSL/TLS",
        "tls_starttls": "STARTTLS",
        "tls_none": "Keine (unverschlüsselt)",
        "pw_password-cleartext": "Ihr E-Mail-Passwort (normales Passwort)",
        "pw_password-encrypted": "Ihr E-Mail-Passwort (verschlüsseltes Passwort, CRAM-MD5)",
        "pw_NTLM": "Windows-Anmeldung (NTLM)",
        "pw_GSSAPI": "Kerberos (GSSAPI)",
        "pw_OAuth2": "Anmeldung beim Anbieter (OAuth2)",
        "pw_TLS-client-cert": "Ein Client-Zertifikat",
        "pw_client-IP-address": "Keines: Ihr Netz wird erkannt",
        "pw_none": "Keines",
        "smtp_auth_note": (
            "Zum Senden braucht es Benutzername und Passwort: Schalten Sie die "
            "SMTP-Authentifizierung ein."
        ),
        "imap_pop_title": "IMAP oder POP3?",
        "imap_pop_text": (
            "IMAP lässt Ihre E-Mails auf dem Server, so zeigen alle Telefone und Computer "
            "dieselben Nachrichten und Ordner: Wählen Sie IMAP, wenn Sie auf mehreren "
            "Geräten lesen. POP3 lädt die E-Mails auf ein Gerät und löscht sie "
            "auf dem Server; sollen sie dort bleiben, schalten Sie „Kopie auf dem Server "
            "lassen“ ein."
        ),
        "clients_title": "Schritt für Schritt",
        "thunderbird_name": "Thunderbird",
        "thunderbird_steps": (
            "Legen Sie ein E-Mail-Konto an und geben Sie Name, Adresse und Passwort ein: "
            "Thunderbird findet die Einstellungen selbst. Vergleichen Sie sie mit der Tabelle oben."
        ),
        "outlook_name": "Outlook",
        "outlook_steps": (
            "Fügen Sie ein Konto mit Ihrer Adresse hinzu: Outlook findet die Einstellungen "
            "selbst. Fragt es nach, wählen Sie IMAP und tragen Sie die Werte aus der "
            "Tabelle oben ein."
        ),
        "apple_name": "Apple Mail (iPhone, iPad, Mac)",
        "apple_steps": (
            "Laden Sie das Konfigurationsprofil und installieren Sie es in den Einstellungen; "
            "das Passwort geben Sie dabei einmal ein."
        ),
        "apple_signed": "Das Profil ist signiert, Ihr Gerät zeigt es als überprüft an.",
        "apple_unsigned": ("Das Profil ist nicht signiert, Ihr Gerät zeigt „Nicht überprüft“ an."),
        "apple_link": "Profil herunterladen",
        "apple_qr": "Auf dem Telefon: Scannen Sie diesen Code, um das Profil zu laden.",
        "apple_unavailable": (
            "Apple Mail kann diesen Anbieter nicht automatisch einrichten: "
            "Tragen Sie die Werte ein."
        ),
        "android_name": "Android",
        "android_steps": (
            "Mit Thunderbird für Android oder K-9 Mail geben Sie Adresse und Passwort ein: "
            "Die Einstellungen werden von selbst gefunden. Andere Apps: Wählen Sie IMAP "
            "und tragen Sie die Werte aus der Tabelle oben ein."
        ),
        "problems_title": "Wenn etwas nicht klappt",
        "problem_port25": (
            "Senden schlägt fehl: Viele Netze sperren Port 25. Nehmen Sie den Port aus der "
            "Tabelle (465 oder 587), nie 25."
        ),
        "problem_auth": (
            "Der Server verweigert das Senden: Schalten Sie „Server für ausgehende "
            "E-Mails erfordert Authentifizierung“ (SMTP-Authentifizierung) ein, mit "
            "demselben Benutzernamen und Passwort."
        ),
        "problem_tls": (
            "Die Verbindung scheitert oder hängt: SSL/TLS und STARTTLS sind nicht dasselbe. "
            "Wählen Sie genau die Sicherheit aus der Tabelle für diesen Port."
        ),
        "problem_pop3": (
            "E-Mails erscheinen doppelt oder verschwinden von einem anderen Gerät: Mit POP3 "
            "auf mehreren Geräten schalten Sie überall „Kopie auf dem Server "
            "lassen“ ein, oder nehmen Sie IMAP."
        ),
        "more_help": "Weitere Hilfe Ihres Anbieters",
        "webmail": "E-Mails im Browser lesen",
        "other_address": "Andere Adresse",
    },
}
LANGUAGES = tuple(TEXTS)
