import { label, STATUSES, time } from "./format";
import { loadList, open, setFilter, state, useStore, visible } from "./store";

export function ConversationList() {
  const s = useStore();
  const f = s.filter;
  const types = [...new Set([...s.channels.map((c) => c.type), ...[...s.convs.values()].map((c) => c.channel_type)])].sort();
  const list = visible();
  return (
    <nav class="list" aria-label="Conversations">
      <h2 class="sr-only">Conversations</h2>
      <div class="filters">
        <label>
          <span id="filter-status-label">Status</span>
          <select aria-labelledby="filter-status-label" value={f.status} onChange={(e) => setFilter({ status: e.currentTarget.value })}>
            <option value="">All</option>
            {STATUSES.map((st) => (
              <option value={st}>{label(st)}</option>
            ))}
          </select>
        </label>
        <label>
          <span id="filter-assignee-label">Assignee</span>
          <select aria-labelledby="filter-assignee-label" value={f.assignee} onChange={(e) => setFilter({ assignee: e.currentTarget.value })}>
            <option value="">Anyone</option>
            <option value="me">Me</option>
            <option value="none">Unassigned</option>
            <option value="bots">Bots</option>
          </select>
        </label>
        <label>
          <span id="filter-channel-label">Channel</span>
          <select aria-labelledby="filter-channel-label" value={f.channel} onChange={(e) => setFilter({ channel: e.currentTarget.value })}>
            <option value="">All</option>
            {types.map((t) => (
              <option value={t}>{t}</option>
            ))}
          </select>
        </label>
      </div>
      <ul class="convs">
        {list.map((c) => {
          const unread = c.unread_count ?? 0;
          const typing = s.typing.get(c.id);
          const preview = typing && typing.until > Date.now() ? `${typing.label} is typing…` : c.last_message?.text ?? "";
          return (
            <li key={c.id}>
              <button
                type="button"
                class={`conv${c.id === s.selected ? " selected" : ""}${unread ? " unread" : ""}`}
                aria-current={c.id === s.selected ? "true" : undefined}
                data-conversation={c.id}
                onClick={() => void open(c.id)}
              >
                <span class="row">
                  <span class="name">{c.contact_name || "Anonymous visitor"}</span>
                  <span class="when">{time(c.last_message_at ?? c.created_at)}</span>
                </span>
                <span class="row">
                  <span class="preview">
                    {c.last_message?.private && !typing ? "Note: " : ""}
                    {preview}
                  </span>
                  {unread > 0 && (
                    <span class="badge" aria-label={`${unread} unread`}>
                      {unread}
                    </span>
                  )}
                </span>
                <span class="row tags">
                  <span class="tag">{c.channel_type}</span>
                  <span class="tag">{c.status}</span>
                  {s.online.has(`contact:${c.contact_id}`) && <span class="tag online">online</span>}
                </span>
              </button>
            </li>
          );
        })}
      </ul>
      {!list.length && !s.loading && <p class="empty">No conversations here.</p>}
      {state.nextCursor && (
        <button type="button" class="more" onClick={() => void loadList(true)}>
          Load more
        </button>
      )}
    </nav>
  );
}
