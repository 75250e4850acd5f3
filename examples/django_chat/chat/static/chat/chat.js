// The chat page: one hubbub connection for every room the user joins.
//
// It connects with no token: the browser sends the page's cookies, Django's session cookie
// among them, with the WebSocket upgrade (cookies belong to the host name, not the port,
// so a page from 127.0.0.1:8000 sends them to the hub on 127.0.0.1:9772). The hub forwards
// the Cookie header to Django (hubbub.toml's [hooks] connect_url), which answers with the
// logged-in user.
//
// Joining a room subscribes to its channel; the hub asks Django (the subscribe hook,
// chat/hubbub_hooks.py), which lets the room's users in and refuses staff-only rooms to
// everyone else, with a reason this page shows. Sending posts to Django, which checks the
// room and publishes; the message comes back, to the sender too, through the hub. "Who's
// here?" asks Django over the WebSocket (an rpc the hub forwards to its rpc_url).
//
// Rooms keep history (hubbub.toml): a joined room shows its recent messages, and after a
// dropped connection the client recovers what was missed by itself. Messages carry their
// offset in the room's stream, so the recent ones and the live ones are put in order and
// none is shown twice.
import init, { Client } from 'hubbub-client';

const config = JSON.parse(document.getElementById('hubbub-config').textContent);
const csrfToken = document.getElementById('csrf').value;
const status = document.getElementById('status');
const chats = document.getElementById('chats');
const paneTemplate = document.getElementById('room-pane');

// Room id -> {subscription, pane} for the rooms joined.
const joined = new Map();

function showError(element, error) {
  element.textContent = error ? `${error.code}: ${error.reason ?? error.message}` : '';
  element.hidden = !error;
}

function setStatus(state) {
  status.dataset.state = state;
  status.textContent = state;
}

function addMessage(pane, message) {
  if (message.offset !== undefined) {
    if (pane.shown.has(message.offset)) return;
    pane.shown.add(message.offset);
  }
  const item = document.createElement('li');
  if (message.offset !== undefined) item.dataset.offset = message.offset;
  const user = document.createElement('b');
  user.className = 'user';
  user.textContent = message.data.user;
  const text = document.createElement('span');
  text.className = 'text';
  text.textContent = message.data.text;
  item.append(user, ' ', text);
  const list = pane.querySelector('.messages');
  // In offset order: the recent messages read from history go before the live ones that
  // may have come first.
  const later = message.offset === undefined
    ? null
    : [...list.children].find((li) => Number(li.dataset.offset) > message.offset);
  list.insertBefore(item, later ?? null);
  list.scrollTop = list.scrollHeight;
}

// The users connected to a room now, as Django answers the rpc `room.members`:
// {room, members: [username, ...]}.
function roomMembers(roomId) {
  return client.rpc('room.members', { room: Number(roomId) });
}

async function showMembers(pane) {
  const here = pane.querySelector('.here');
  const error = pane.querySelector('.error');
  try {
    const { members } = await roomMembers(pane.dataset.roomId);
    here.textContent = `Here now: ${members.join(', ')}`;
    here.hidden = false;
    showError(error, null);
  } catch (err) {
    // The app's refusal (ACCESS_DENIED, NOT_FOUND), or the hub's (UNAVAILABLE, DISCONNECTED).
    here.hidden = true;
    showError(error, err);
  }
}

function openPane(room) {
  const pane = paneTemplate.content.firstElementChild.cloneNode(true);
  pane.shown = new Set();
  pane.dataset.roomId = room.dataset.roomId;
  pane.dataset.title = room.dataset.title;
  pane.querySelector('h3').textContent = room.dataset.title;
  pane.querySelector('.leave').addEventListener('click', () => leave(room));
  pane.querySelector('.members').addEventListener('click', () => showMembers(pane));
  const form = pane.querySelector('form.send');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const input = form.elements.text;
    const error = pane.querySelector('.error');
    try {
      const response = await fetch(room.dataset.sendUrl, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-CSRFToken': csrfToken },
        body: JSON.stringify({ text: input.value }),
      });
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        throw Object.assign(new Error(body.reason ?? response.statusText), {
          code: body.error ?? `HTTP ${response.status}`,
        });
      }
      input.value = '';
      showError(error, null);
    } catch (err) {
      showError(error, err);
    }
  });
  chats.append(pane);
  return pane;
}

async function join(room) {
  const button = room.querySelector('button.join');
  const error = room.querySelector('.error');
  button.disabled = true;
  showError(error, null);
  const pane = openPane(room);
  try {
    const subscription = await client.subscribe(
      room.dataset.channel,
      (message) => addMessage(pane, message),
      {
        // After a reconnect: the gap was filled, or the page says what to do.
        onRecover: ({ recovered }) => {
          const notice = pane.querySelector('.notice');
          notice.hidden = recovered;
          notice.textContent = recovered
            ? ''
            : 'The connection dropped and some messages could not be recovered: reload the page to see them.';
        },
      },
    );
    joined.set(room.dataset.roomId, { subscription, pane });
    // The room's recent messages, shown above what arrives from now on.
    const recent = await subscription.history({ limit: 20 });
    for (const message of recent.messages) addMessage(pane, message);
    room.dataset.joined = '';
    button.textContent = 'Joined';
  } catch (err) {
    // Refused by Django through the hub (ACCESS_DENIED with Django's reason, e.g. a
    // staff-only room), the hub's UNAVAILABLE where Django did not answer, or no connection.
    pane.remove();
    showError(error, err);
    button.disabled = false;
  }
}

async function leave(room) {
  const entry = joined.get(room.dataset.roomId);
  if (!entry) return;
  joined.delete(room.dataset.roomId);
  entry.pane.remove();
  const button = room.querySelector('button.join');
  button.textContent = 'Leaving';
  await entry.subscription.unsubscribe();
  delete room.dataset.joined;
  button.textContent = 'Join';
  button.disabled = false;
}

await init();
// No token: the session cookie identifies the page (see the top of this file).
const client = new Client(config.url, {
  onStateChange: setStatus,
  // Errors that answer no call, e.g. a room refused when resubscribing after a reconnect.
  onError: (err) => {
    const room = err.channel && document.querySelector(`#rooms li[data-channel="${err.channel}"]`);
    if (room) showError(room.querySelector('.error'), err);
  },
});

for (const room of document.querySelectorAll('#rooms li[data-room-id]')) {
  room.querySelector('button.join').addEventListener('click', () => join(room));
}

try {
  await client.connect();
  for (const button of document.querySelectorAll('#rooms button.join')) button.disabled = false;
} catch (err) {
  setStatus('closed');
  showError(document.querySelector('#rooms li .error') ?? status, err);
}
