// The widget's labels, in the visitor's language: data-locale, else navigator.languages.

const en = {
  open: "Open chat",
  close: "Close chat",
  unread: (n: number) => (n === 1 ? "1 unread message" : `${n} unread messages`),
  title: "Chat with us",
  messages: "Messages",
  empty: "Send us a message and we will answer here.",
  loading: "Loading messages…",
  label: "Message",
  placeholder: "Write a message…",
  send: "Send",
  you: "You",
  team: "Support",
  bot: "Bot",
  typing: (who: string) => `${who} is typing…`,
  pending: "Sending…",
  waiting: "Waiting for the network…",
  sent: "Sent",
  delivered: "Delivered",
  read: "Read",
  failed: "Not sent",
  retry: "Retry",
  connecting: "Connecting…",
  offline: "You are offline. Messages will be sent when the connection is back.",
  refused: "Chat is not available on this page.",
  refusedIdentity: "We could not verify who you are, so the chat cannot start.",
  unavailable: "Chat is unavailable right now. Trying again…",
  formIntro: "Before we start, tell us how to reach you.",
  name: "Name",
  email: "Email",
  required: "required",
  start: "Start chat",
  badEmail: "Enter a valid email address.",
  missing: (field: string) => `${field} is required.`,
  image: "Image",
  file: "File",
  location: "Location",
  openFile: (name: string) => `Open ${name}`,
};

export type Labels = typeof en;

const fr: Labels = {
  open: "Ouvrir la discussion",
  close: "Fermer la discussion",
  unread: (n: number) => (n === 1 ? "1 message non lu" : `${n} messages non lus`),
  title: "Discutons",
  messages: "Messages",
  empty: "Envoyez-nous un message, nous vous répondrons ici.",
  loading: "Chargement des messages…",
  label: "Message",
  placeholder: "Écrivez un message…",
  send: "Envoyer",
  you: "Vous",
  team: "Assistance",
  bot: "Robot",
  typing: (who: string) => `${who} est en train d’écrire…`,
  pending: "Envoi…",
  waiting: "En attente du réseau…",
  sent: "Envoyé",
  delivered: "Distribué",
  read: "Lu",
  failed: "Non envoyé",
  retry: "Réessayer",
  connecting: "Connexion…",
  offline: "Vous êtes hors ligne. Vos messages partiront dès le retour de la connexion.",
  refused: "La discussion n’est pas disponible sur cette page.",
  refusedIdentity: "Nous n’avons pas pu vérifier votre identité : la discussion ne peut pas commencer.",
  unavailable: "La discussion est momentanément indisponible. Nouvel essai…",
  formIntro: "Avant de commencer, dites-nous comment vous joindre.",
  name: "Nom",
  email: "E-mail",
  required: "obligatoire",
  start: "Commencer",
  badEmail: "Saisissez une adresse e-mail valide.",
  missing: (field: string) => `${field} : champ obligatoire.`,
  image: "Image",
  file: "Fichier",
  location: "Position",
  openFile: (name: string) => `Ouvrir ${name}`,
};

const TABLES: Record<string, Labels> = { en, fr };

/** The locale to use: the first of ``wanted`` whose language we have, else English. */
export function pickLocale(wanted: readonly string[]): string {
  for (const tag of wanted) {
    const lang = (tag || "").toLowerCase().split(/[-_]/)[0];
    if (lang in TABLES) return lang;
  }
  return "en";
}

export function labels(locale: string): Labels {
  return TABLES[locale] || en;
}
