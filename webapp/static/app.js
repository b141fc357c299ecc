/* pastefile front-end: uploads (picker, drag & drop, clipboard paste),
 * progress, result cards, copy buttons, and the uploader's own list of
 * uploads with their delete links. Plain JS, no build step. */
(() => {
  'use strict';

  document.documentElement.classList.remove('no-js');

  const MEDIA_KINDS = ['image', 'audio', 'video'];
  const MAX_PARALLEL = 3;
  const LOCAL_PREVIEW_LIMIT = 25 * 1024 * 1024;

  const ICONS = {
    copy: '<svg class="icon" viewBox="0 0 24 24" width="16" height="16" aria-hidden="true" focusable="false"><rect x="9" y="9" width="11" height="11" rx="2"/><path d="M5 15V6a2 2 0 0 1 2-2h9"/></svg>',
    check: '<svg class="icon" viewBox="0 0 24 24" width="16" height="16" aria-hidden="true" focusable="false"><path d="M5 12.5l4.5 4.5L19 7.5"/></svg>',
    close: '<svg class="icon" viewBox="0 0 24 24" width="16" height="16" aria-hidden="true" focusable="false"><path d="M6 6l12 12M18 6L6 18"/></svg>',
    file: '<svg viewBox="0 0 48 60" width="64" height="80"><path class="file-icon__sheet" d="M6 2h26l14 14v38a4 4 0 0 1-4 4H6a4 4 0 0 1-4-4V6a4 4 0 0 1 4-4z"/><path class="file-icon__fold" d="M32 2v10a4 4 0 0 0 4 4h10"/></svg>',
  };

  /* ------------------------------------------------------------------ */
  /* Small DOM helpers                                                   */
  /* ------------------------------------------------------------------ */

  function h(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'class') node.className = value;
      else if (key === 'text') node.textContent = value;
      else if (key === 'dataset') Object.assign(node.dataset, value);
      else node.setAttribute(key, value === true ? '' : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  /* Parse one of the static ICONS strings (never user data). */
  function icon(name) {
    const tpl = document.createElement('template');
    tpl.innerHTML = ICONS[name];
    return tpl.content.firstElementChild;
  }

  /* Same units as the server (powers of 1024 named bytes, kB, MB, ...). */
  function humanSize(bytes) {
    const units = ['bytes', 'kB', 'MB', 'GB', 'TB'];
    const size = Math.max(0, Number(bytes) || 0);
    if (size === 1) return '1 byte';
    let factor = 0;
    while (factor + 1 < units.length && size >= 1024 ** (factor + 1)) factor += 1;
    return `${(size / 1024 ** factor).toFixed(2)} ${units[factor]}`;
  }

  function kindOf(data) {
    const type = String(data.type || '').toLowerCase();
    if (MEDIA_KINDS.includes(type)) return type;
    const major = String(data.mimetype || '').split('/')[0].toLowerCase();
    return MEDIA_KINDS.includes(major) ? major : 'other';
  }

  function extensionOf(name) {
    const dot = name.lastIndexOf('.');
    const ext = dot > -1 ? name.slice(dot + 1, dot + 6) : '';
    return (ext || 'file').toUpperCase();
  }

  /* ------------------------------------------------------------------ */
  /* Clipboard                                                           */
  /* ------------------------------------------------------------------ */

  function copyWithTextarea(text) {
    const area = h('textarea', { readonly: true, 'aria-hidden': 'true', tabindex: '-1' });
    area.value = text;
    Object.assign(area.style, { position: 'fixed', top: '0', left: '-9999px', opacity: '0' });
    document.body.append(area);
    const previous = document.activeElement;
    area.focus();
    area.select();
    area.setSelectionRange(0, text.length);
    let ok = false;
    try {
      ok = document.execCommand('copy');
    } catch (err) {
      ok = false;
    }
    area.remove();
    if (previous && typeof previous.focus === 'function') previous.focus({ preventScroll: true });
    return ok;
  }

  async function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      try {
        const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 1500));
        await Promise.race([navigator.clipboard.writeText(text), timeout]);
        return true;
      } catch (err) {
        /* fall through to the legacy path */
      }
    }
    return copyWithTextarea(text);
  }

  function selectLinkText(button) {
    const row = button.closest('.link-row');
    const link = row && row.querySelector('.link-row__url');
    if (!link) return;
    const range = document.createRange();
    range.selectNodeContents(link);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function flashButton(button, ok) {
    const label = button.querySelector('.copy-btn__text');
    clearTimeout(button._pfTimer);
    button.classList.toggle('is-copied', ok);
    button.classList.toggle('is-failed', !ok);
    const oldIcon = button.querySelector('svg');
    if (oldIcon) oldIcon.replaceWith(icon(ok ? 'check' : 'copy'));
    if (label) label.textContent = ok ? 'Copied' : 'Press Ctrl+C';
    button._pfTimer = setTimeout(() => {
      button.classList.remove('is-copied', 'is-failed');
      const current = button.querySelector('svg');
      if (current) current.replaceWith(icon('copy'));
      if (label) label.textContent = 'Copy';
    }, 2000);
  }

  document.addEventListener('click', async (event) => {
    const button = event.target.closest('.copy-btn');
    if (button) {
      event.preventDefault();
      const ok = await copyText(button.dataset.copy || '');
      if (!ok) selectLinkText(button);
      flashButton(button, ok);
      return;
    }
    const back = event.target.closest('[data-action="back"]');
    if (back) {
      event.preventDefault();
      if (history.length > 1) history.back();
      else window.location.href = '/';
    }
  });

  /* ------------------------------------------------------------------ */
  /* Card builder: mirrors templates/_card.jinja2                         */
  /* ------------------------------------------------------------------ */

  function linkRow(key, label, url, newTab) {
    const copyButton = h('button', {
      type: 'button',
      class: 'btn btn--copy copy-btn',
      'data-copy': url,
      'aria-label': `Copy ${label.toLowerCase()} link`,
    }, icon('copy'), h('span', { class: 'copy-btn__text', text: 'Copy' }));
    return h('li', { class: `link-row link-row--${key}` },
      h('span', { class: 'link-row__label', text: label }),
      h('a', {
        class: `link-row__url link-${key}`,
        href: url,
        target: newTab ? '_blank' : null,
        rel: newTab ? 'noopener' : null,
        title: url,
        text: String(url).replace(/^[a-z][a-z0-9+.-]*:\/\//i, ''),
      }),
      copyButton);
  }

  function fileBadge(filename) {
    const badge = h('div', { class: 'file-icon', 'aria-hidden': 'true' });
    badge.append(icon('file'), h('span', { class: 'file-icon__ext', text: extensionOf(filename) }));
    return badge;
  }

  function metaItem(key, label, value) {
    return h('div', { class: `meta meta--${key}` }, h('dt', { text: label }), h('dd', { text: value }));
  }

  function buildMedia(data, kind, full) {
    const media = h('div', { class: 'card__media' });
    if (kind === 'image') {
      const img = h('img', {
        class: 'card__image',
        src: data.url_i,
        alt: data.filename,
        width: data.width || null,
        height: data.height || null,
        decoding: 'async',
      });
      media.append(h('a', {
        class: 'card__media-link',
        href: full ? data.url_i : data.url_p,
        title: full ? 'Open the raw image' : 'Open the preview page',
        target: full ? null : '_blank',
        rel: full ? null : 'noopener',
      }, img));
    } else if (kind === 'audio') {
      media.append(h('audio', { class: 'card__audio', controls: true, preload: 'metadata', src: data.url_i }));
    } else if (kind === 'video') {
      media.append(h('video', {
        class: 'card__video', controls: true, preload: 'metadata', playsinline: true, src: data.url_i,
      }));
    } else {
      media.append(fileBadge(data.filename || ''));
    }
    return media;
  }

  function buildCard(data, options = {}) {
    const kind = options.kind || kindOf(data);
    const full = Boolean(options.full);
    const meta = h('dl', { class: 'card__meta' },
      metaItem('size', 'Size', data.size),
      metaItem('type', 'Type', data.mimetype || data.type),
      data.width && data.height ? metaItem('dims', 'Dimensions', `${data.width} \u00d7 ${data.height} px`) : null,
      metaItem('time', 'Uploaded', data.time),
      data.expires ? metaItem('expires', 'Expires', `${data.expires} UTC`) : null);
    const links = h('ul', { class: 'card__links' },
      linkRow('d', 'Download', data.url_d, false),
      linkRow('i', 'Raw', data.url_i, !full),
      linkRow('p', 'Preview', data.url_p, !full),
      linkRow('s', 'Short', data.url_s, !full));
    return h('article', {
      class: `card result-card result-card--${kind}${full ? ' result-card--full' : ''}`,
      dataset: { kind, filehash: data.filehash || '' },
    },
    buildMedia(data, kind, full),
    h('div', { class: 'card__body' },
      h('div', { class: 'card__head' },
        h('h2', { class: 'card__title filename', title: data.filename, text: data.filename }),
        h('span', { class: `badge badge--${kind}`, text: kind })),
      meta,
      links));
  }

  /* Images a browser cannot show (TIFF, HEIC, files served as attachments)
   * fall back to the file badge instead of a broken-image icon. */
  function fallBackToBadge(img) {
    const media = img.closest('.card__media');
    if (!media || media.dataset.fallback) return;
    media.dataset.fallback = 'badge';
    const card = img.closest('.card');
    const title = card && card.querySelector('.filename');
    media.replaceChildren(fileBadge(title ? title.textContent : ''));
  }

  document.addEventListener('error', (event) => {
    const img = event.target;
    if (img instanceof HTMLImageElement && img.classList.contains('card__image')) fallBackToBadge(img);
  }, true);
  for (const img of document.querySelectorAll('.card__image')) {
    if (img.complete && img.naturalWidth === 0) fallBackToBadge(img);
  }

  /* ------------------------------------------------------------------ */
  /* The uploader's list: kept in localStorage, in this browser only      */
  /* ------------------------------------------------------------------ */

  const STORE_KEY = 'pastefile.uploads.v1';
  const STORE_MAX = 200;
  const STORED_KEYS = ['filehash', 'filename', 'url_d', 'url_i', 'url_p', 'url_s', 'url_delete',
    'size', 'time', 'type', 'mimetype', 'width', 'height', 'expires'];
  let memoryEntries = [];  // when storage is refused (privacy settings, quota)

  /* The server's "YYYY-MM-DD HH:MM:SS" times are UTC. */
  function expired(entry) {
    if (!entry.expires) return false;
    const when = Date.parse(`${entry.expires.replace(' ', 'T')}Z`);
    return Number.isFinite(when) && when <= Date.now();
  }

  function loadEntries() {
    let entries;
    try {
      entries = JSON.parse(window.localStorage.getItem(STORE_KEY) || '[]');
    } catch (err) {
      entries = memoryEntries;  // storage refused or unreadable: what this page kept
    }
    return Array.isArray(entries)
      ? entries.filter((e) => e && typeof e.filehash === 'string' && typeof e.url_p === 'string' && !expired(e))
      : [];
  }

  function saveEntries(entries) {
    memoryEntries = entries.slice(0, STORE_MAX);
    try {
      window.localStorage.setItem(STORE_KEY, JSON.stringify(memoryEntries));
    } catch (err) {
      /* the list then lasts as long as the page */
    }
  }

  function findEntry(filehash) {
    return loadEntries().find((e) => e.filehash === filehash) || null;
  }

  /* In the page's order: newest batch first, each batch in the order its
   * files were given (uploads of a batch finish in any order). A repeated
   * upload of the same file keeps the delete link its first answer carried
   * if this one has none. */
  function rememberUpload(data, batch, position) {
    const entries = loadEntries();
    const earlier = entries.find((e) => e.filehash === data.filehash);
    const entry = { batch, position };
    for (const key of STORED_KEYS) {
      if (data[key] !== undefined && data[key] !== null) entry[key] = data[key];
    }
    if (!entry.url_delete && earlier && earlier.url_delete) entry.url_delete = earlier.url_delete;
    const kept = [entry, ...entries.filter((e) => e.filehash !== data.filehash)];
    kept.sort((a, b) => (b.batch || 0) - (a.batch || 0) || (a.position || 0) - (b.position || 0));
    saveEntries(kept);
    return entry;
  }

  function forgetUpload(filehash) {
    saveEntries(loadEntries().filter((e) => e.filehash !== filehash));
  }

  /* The delete link goes to this page's own origin (the page's CSP allows
   * no other), whatever host the configured base URL names. */
  function sameOriginPath(url) {
    const target = new URL(url, window.location.href);
    return target.pathname + target.search;
  }

  async function deleteUpload(entry) {
    let response;
    try {
      response = await fetch(sameOriginPath(entry.url_delete), {
        method: 'POST',
        headers: { Accept: 'application/json' },
        credentials: 'same-origin',
        cache: 'no-store',
      });
    } catch (err) {
      return { ok: false, message: 'The server could not be reached. Try again.' };
    }
    // 404: already gone (expired, or deleted from another browser)
    if (response.ok || response.status === 404) return { ok: true, gone: response.status === 404 };
    let message = `The server answered ${response.status}.`;
    try {
      const data = await response.json();
      if (data && data.error && data.error.message) message = data.error.message;
    } catch (err) {
      /* keep the status */
    }
    return { ok: false, message };
  }

  /* Delete and "remove from list" controls for a card of this browser's
   * list. In the list (inList) the card leaves with its entry and then
   * onRemoved() runs; elsewhere (the preview page) only the controls go. */
  function ownerActions(card, entry, { inList = true, onRemoved = null } = {}) {
    const name = entry.filename || 'this file';
    const status = h('p', { class: 'card__status', role: 'status' });
    const actions = h('div', { class: 'card__owner' });
    const forget = h('button', {
      type: 'button',
      class: 'btn btn--ghost btn--small card__forget',
      'aria-label': `Remove ${name} from this list`,
      title: 'Remove from this list (the file stays online)',
    }, 'Remove from list');
    forget.addEventListener('click', () => {
      forgetUpload(entry.filehash);
      (inList ? card : actions).remove();
      if (onRemoved) onRemoved();
    });
    if (entry.url_delete) {
      const del = h('a', {
        class: 'btn btn--danger btn--small card__delete link-delete',
        href: entry.url_delete,
        rel: 'nofollow noreferrer',
        'aria-label': `Delete ${name}`,
      }, 'Delete\u2026');
      del.addEventListener('click', async (event) => {
        event.preventDefault();
        if (del.getAttribute('aria-disabled') === 'true') return;
        if (!window.confirm(`Delete \u201c${name}\u201d for good? Its links stop working at once; this cannot be undone.`)) return;
        del.setAttribute('aria-disabled', 'true');
        status.classList.remove('is-error');
        status.textContent = 'Deleting\u2026';
        const result = await deleteUpload(entry);
        if (!result.ok) {
          del.removeAttribute('aria-disabled');
          status.classList.add('is-error');
          status.textContent = `Not deleted: ${result.message}`;
          return;
        }
        forgetUpload(entry.filehash);
        card.dataset.state = 'deleted';
        card.classList.add('is-deleted');
        const links = card.querySelector('.card__links');
        if (links) links.remove();
        const media = card.querySelector('.card__media');
        if (media) media.replaceChildren(fileBadge(name));
        del.remove();
        if (inList) {
          forget.textContent = 'Dismiss';
          forget.setAttribute('aria-label', `Dismiss ${name}`);
          forget.removeAttribute('title');
        } else {
          forget.remove();
        }
        status.textContent = result.gone
          ? 'This file was already gone; its links no longer work.'
          : 'Deleted. Its links no longer work.';
      });
      actions.append(del);
    }
    actions.append(forget, status);
    return actions;
  }

  /* A preview page of a file uploaded from this browser offers its delete link. */
  function initPreviewOwner(card) {
    const entry = findEntry(card.dataset.filehash || '');
    if (!entry || !entry.url_delete) return;
    card.querySelector('.card__body').append(ownerActions(card, entry, { inList: false }));
  }

  /* ------------------------------------------------------------------ */
  /* Upload page                                                         */
  /* ------------------------------------------------------------------ */

  function initUploadPage(form) {
    const config = {
      url: form.getAttribute('action') || window.location.pathname,
      maxSize: parseInt(form.dataset.maxSize, 10) || Infinity,
      maxSizeHuman: form.dataset.maxSizeHuman || '',
      maxSide: parseInt(form.dataset.maxSide, 10) || null,
      // files of this size and up go up resumably (tus) when the client library loaded
      tusThreshold: parseInt(form.dataset.tusThreshold, 10) || Infinity,
      tusEndpoint: new URL(form.dataset.tusEndpoint || '/files/', window.location.href).href,
    };
    const input = document.getElementById('file-input');
    const dropZone = document.getElementById('drop-zone');
    const results = document.getElementById('results');
    const resultsHead = document.getElementById('results-head');
    const clearButton = document.getElementById('clear-results');
    const widthInput = document.getElementById('w');
    const heightInput = document.getElementById('h');
    const expirySelect = document.getElementById('expires');
    const homeTitle = document.title;
    const homePath = window.location.pathname;

    const queue = [];
    let active = 0;

    form.addEventListener('submit', (event) => {
      event.preventDefault();
      if (input.files.length) takeFiles(Array.from(input.files));
    });

    /* ---- resize options ------------------------------------------- */

    function readResize() {
      const out = {};
      for (const [key, field] of [['w', widthInput], ['h', heightInput]]) {
        if (!field) continue;
        const raw = field.value.trim();
        field.setCustomValidity('');
        if (!raw) continue;
        const value = Number(raw);
        if (!Number.isInteger(value) || value < 1 || (config.maxSide && value > config.maxSide)) {
          field.setCustomValidity(`Enter a whole number from 1 to ${config.maxSide || 'the maximum'}.`);
          field.reportValidity();
          return null;
        }
        out[key] = String(value);
      }
      return out;
    }

    for (const field of [widthInput, heightInput]) {
      if (field) field.addEventListener('input', () => field.setCustomValidity(''));
    }

    /* ---- pending card ---------------------------------------------- */

    function buildProgress() {
      const bar = h('progress', { class: 'progress__bar', max: '100', value: '0' });
      const label = h('span', { class: 'progress__label', text: 'Waiting\u2026' });
      const percent = h('span', { class: 'progress__percent', text: '0%' });
      const cancel = h('button', {
        type: 'button', class: 'btn btn--icon progress__cancel', 'aria-label': 'Cancel upload', title: 'Cancel upload',
      }, icon('close'));
      const wrap = h('div', { class: 'progress', dataset: { state: 'queued' } },
        h('div', { class: 'progress__row' }, label, percent, cancel), bar);
      return { wrap, bar, label, percent, cancel };
    }

    function buildPending(file) {
      const progress = buildProgress();
      const isImage = /^image\//.test(file.type);
      const kind = kindOf({ mimetype: file.type });
      let objectUrl = null;
      let media;
      if (isImage && file.size <= LOCAL_PREVIEW_LIMIT) {
        objectUrl = URL.createObjectURL(file);
        media = h('div', { class: 'card__media' }, h('img', { class: 'card__image card__image--local', src: objectUrl, alt: '' }));
      } else {
        media = h('div', { class: 'card__media' }, fileBadge(file.name));
      }
      const error = h('div', { class: 'card__error', role: 'alert', hidden: true });
      const dismiss = h('button', {
        type: 'button', class: 'btn btn--ghost btn--small card__dismiss', hidden: true,
      }, 'Remove');
      const card = h('article', { class: 'card upload-card', dataset: { state: 'queued' } },
        media,
        h('div', { class: 'card__body' },
          h('div', { class: 'card__head' },
            h('h2', { class: 'card__title filename', title: file.name, text: file.name || 'untitled' }),
            h('span', { class: `badge badge--${kind}`, text: kind })),
          progress.wrap,
          error,
          h('dl', { class: 'card__meta' },
            metaItem('size', 'Size', humanSize(file.size)),
            metaItem('type', 'Type', file.type || 'unknown')),
          dismiss));
      dismiss.addEventListener('click', () => {
        card.remove();
        refreshHead();
      });
      return { card, progress, error, dismiss, objectUrl, file };
    }

    function setProgress(item, fraction, text, state) {
      const pct = Math.max(0, Math.min(100, Math.round(fraction * 100)));
      item.progress.bar.value = pct;
      item.progress.percent.textContent = `${pct}%`;
      if (text) item.progress.label.textContent = text;
      if (state) {
        item.progress.wrap.dataset.state = state;
        item.card.dataset.state = state;
      }
    }

    function releaseLocalPreview(item) {
      if (item.objectUrl) {
        URL.revokeObjectURL(item.objectUrl);
        item.objectUrl = null;
      }
    }

    function fail(item, title, message) {
      releaseLocalPreview(item);
      item.card.classList.add('is-error');
      item.card.dataset.state = 'error';
      item.progress.wrap.dataset.state = 'error';
      item.progress.label.textContent = 'Failed';
      item.progress.cancel.hidden = true;
      item.error.replaceChildren(
        h('strong', { class: 'card__error-title', text: title }),
        message ? h('span', { class: 'card__error-message', text: message }) : null);
      item.error.hidden = false;
      item.dismiss.hidden = false;
      const localImage = item.card.querySelector('.card__image--local');
      if (localImage) localImage.closest('.card__media').replaceChildren(fileBadge(item.file.name));
    }

    function succeed(item, data, single, batch, position) {
      const card = buildCard(data, { kind: kindOf(data) });
      const entry = rememberUpload(data, batch, position);
      // an earlier card of the same paste (restored, or uploaded twice) makes way
      for (const other of Array.from(results.querySelectorAll('.result-card'))) {
        if (other.dataset.filehash === data.filehash) other.remove();
      }
      card.querySelector('.card__body').append(ownerActions(card, entry, { onRemoved: refreshHead }));
      setProgress(item, 1, 'Done', 'done');
      item.progress.cancel.remove();
      const body = card.querySelector('.card__body');
      body.insertBefore(item.progress.wrap, body.querySelector('.card__meta'));
      card.dataset.state = 'done';
      item.card.replaceWith(card);
      releaseLocalPreview(item);
      item.card = card;
      if (single && data.url_p) {
        try {
          const target = new URL(data.url_p, window.location.href);
          history.pushState({ pastefile: 'preview', url: data.url_p }, '', target.pathname + target.search);
          document.title = `${data.filename} \u00b7 pastefile`;
        } catch (err) {
          /* leave the address bar alone if the URL cannot be used */
        }
      }
    }

    function errorFromResponse(xhr, data) {
      if (data && data.error) {
        const err = data.error;
        return [err.title || `Error ${err.status || xhr.status}`, err.message || ''];
      }
      if (xhr.status === 413) {
        return ['File too large', `The server refused the file. The limit is ${config.maxSizeHuman} per file.`];
      }
      const reason = xhr.statusText ? ` ${xhr.statusText}` : '';
      return [`Upload failed (HTTP ${xhr.status}${reason})`, 'The server sent an unexpected response. Please try again.'];
    }

    /* ---- XHR upload ------------------------------------------------- */

    function upload(job) {
      if (job.item.file.size >= config.tusThreshold && window.tus && window.tus.isSupported) {
        uploadResumable(job);
        return;
      }
      uploadPlain(job);
    }

    function uploadPlain(job) {
      const { item, resize, expires, single, batch, position } = job;
      const body = new FormData();
      body.append('file', item.file, item.file.name || 'upload');
      if (expires) body.append('expires', expires);
      // the size options only apply to images; other files go up untouched
      if (/^image\//.test(item.file.type)) {
        if (resize.w) body.append('w', resize.w);
        if (resize.h) body.append('h', resize.h);
      }

      const xhr = new XMLHttpRequest();
      xhr.open('POST', config.url);
      xhr.setRequestHeader('Accept', 'application/json');
      let settled = false;
      const finish = () => {
        if (settled) return false;
        settled = true;
        active -= 1;
        pump();
        return true;
      };

      xhr.upload.addEventListener('progress', (event) => {
        if (event.lengthComputable && event.total > 0) {
          setProgress(item, event.loaded / event.total, 'Uploading\u2026', 'uploading');
        }
      });
      xhr.upload.addEventListener('load', () => setProgress(item, 1, 'Processing\u2026', 'processing'));
      xhr.addEventListener('load', () => {
        if (!finish()) return;
        let data = null;
        try {
          data = JSON.parse(xhr.responseText);
        } catch (err) {
          data = null;
        }
        if (xhr.status >= 200 && xhr.status < 300 && data && !data.error && data.url_p) {
          succeed(item, data, single, batch, position);
        } else {
          const [title, message] = errorFromResponse(xhr, data);
          fail(item, title, message);
        }
      });
      xhr.addEventListener('error', () => {
        if (finish()) fail(item, 'Network error', 'The upload could not be completed. Check your connection and try again.');
      });
      xhr.addEventListener('timeout', () => {
        if (finish()) fail(item, 'Timed out', 'The server took too long to answer.');
      });
      xhr.addEventListener('abort', () => {
        if (finish()) fail(item, 'Cancelled', 'The upload was cancelled.');
      });
      item.progress.cancel.onclick = () => xhr.abort();

      setProgress(item, 0, 'Uploading\u2026', 'uploading');
      xhr.send(body);
    }

    /* ---- resumable upload (tus, for large files) ----------------------
     * In 8 MiB PATCHes (under a 16m proxy body limit), retried on its own
     * when the connection or the server drops, pausable, and resumable
     * after a reload: the upload's URL is kept in localStorage under the
     * file's fingerprint until it succeeds, so choosing the same file again
     * continues from the server's offset. */

    const TUS_CHUNK = 8 * 1024 * 1024;
    const TUS_RETRY_DELAYS = [0, 1000, 3000, 5000, 10000, 10000, 10000];
    // 423: a request the server lost (a crashed process) still holds the
    // upload until its lease lapses (a minute); wait that out beyond the
    // library's own retries
    const TUS_LOCKED_WAIT = 10000;
    const TUS_LOCKED_TRIES = 12;

    function tusStatus(err) {
      const res = err && err.originalResponse;
      return res ? res.getStatus() : 0;
    }

    function tusErrorText(err) {
      const res = err && err.originalResponse;
      const status = tusStatus(err);
      if (res) {
        let data = null;
        try {
          data = JSON.parse(res.getBody() || '');
        } catch (parseError) {
          data = null;
        }
        if (data && data.error) {
          return [data.error.title || `Error ${status}`, data.error.message || ''];
        }
        if (status === 413) {
          return ['File too large', `The server refused the file. The limit is ${config.maxSizeHuman} per file.`];
        }
        return [`Upload failed (HTTP ${status})`, 'The server sent an unexpected response. Please try again.'];
      }
      return ['Network error', 'The upload could not be completed. Check your connection and choose the file again to resume.'];
    }

    async function fetchPaste(uploadUrl) {
      const response = await fetch(sameOriginPath(uploadUrl), {
        headers: { Accept: 'application/json' },
        credentials: 'same-origin',
        cache: 'no-store',
      });
      let data = null;
      try {
        data = await response.json();
      } catch (err) {
        data = null;
      }
      if (!response.ok || !data || data.error || !data.url_p) {
        const err = (data && data.error) || {};
        throw Object.assign(new Error('no paste'), {
          title: err.title || `Upload failed (HTTP ${response.status})`,
          detail: err.message || 'The server did not tell where the file went. Please try again.',
        });
      }
      return data;
    }

    function uploadResumable(job) {
      const { item, resize, expires, single, batch, position } = job;
      const file = item.file;
      const metadata = { filename: file.name || 'upload', filetype: file.type || 'application/octet-stream' };
      if (expires) metadata.expires = expires;
      if (/^image\//.test(file.type)) {
        if (resize.w) metadata.w = resize.w;
        if (resize.h) metadata.h = resize.h;
      }

      let settled = false;
      const finish = () => {
        if (settled) return false;
        settled = true;
        active -= 1;
        pump();
        return true;
      };
      // what the completing PATCH told only the uploader
      const completion = { deleteUrl: null, deleteToken: null };
      let paused = false;
      let lockedTries = 0;
      let lockedTimer = null;

      const pause = h('button', {
        type: 'button', class: 'btn btn--ghost btn--small progress__pause', 'aria-pressed': 'false',
      }, 'Pause');
      item.progress.cancel.before(pause);
      item.card.dataset.transport = 'tus';

      const tusUpload = new window.tus.Upload(file, {
        endpoint: config.tusEndpoint,
        chunkSize: TUS_CHUNK,
        retryDelays: TUS_RETRY_DELAYS,
        metadata,
        storeFingerprintForResuming: true,
        removeFingerprintOnSuccess: true,
        onProgress(sent, total) {
          if (paused || settled) return;
          lockedTries = 0;
          setProgress(item, total > 0 ? sent / total : 0, 'Uploading\u2026', 'uploading');
          item.card.dataset.uploadUrl = tusUpload.url || '';
        },
        onAfterResponse(req, res) {
          const token = res.getHeader('X-Delete-Token');
          if (token) {
            completion.deleteToken = token;
            completion.deleteUrl = res.getHeader('X-Delete-Url') || null;
          }
        },
        onSuccess() {
          pause.remove();
          setProgress(item, 1, 'Processing\u2026', 'processing');
          fetchPaste(tusUpload.url).then((data) => {
            if (!finish()) return;
            if (!data.url_delete && completion.deleteUrl) data.url_delete = completion.deleteUrl;
            if (!data.delete_token && completion.deleteToken) data.delete_token = completion.deleteToken;
            succeed(item, data, single, batch, position);
          }, (err) => {
            if (finish()) fail(item, err.title || 'Upload failed', err.detail || '');
          });
        },
        onError(err) {
          if (settled || paused) return;
          if (tusStatus(err) === 423 && lockedTries < TUS_LOCKED_TRIES) {
            lockedTries += 1;
            item.progress.label.textContent = 'Waiting for the server\u2026';
            lockedTimer = setTimeout(() => {
              lockedTimer = null;
              if (!paused && !settled) tusUpload.start();
            }, TUS_LOCKED_WAIT);
            return;
          }
          pause.remove();
          const [title, message] = tusErrorText(err);
          if (finish()) fail(item, title, message);
        },
      });

      pause.addEventListener('click', () => {
        if (settled) return;
        paused = !paused;
        pause.textContent = paused ? 'Resume' : 'Pause';
        pause.setAttribute('aria-pressed', String(paused));
        if (paused) {
          clearTimeout(lockedTimer);
          lockedTimer = null;
          tusUpload.abort();
          setProgress(item, Number(item.progress.bar.value) / 100, 'Paused', 'paused');
        } else {
          lockedTries = 0;
          setProgress(item, Number(item.progress.bar.value) / 100, 'Resuming\u2026', 'uploading');
          tusUpload.start();
        }
      });

      item.progress.cancel.onclick = () => {
        clearTimeout(lockedTimer);
        pause.remove();
        // terminates the upload on the server and forgets its fingerprint
        tusUpload.abort(true).catch(() => {});
        if (finish()) fail(item, 'Cancelled', 'The upload was cancelled.');
      };

      setProgress(item, 0, 'Uploading\u2026', 'uploading');
      tusUpload.findPreviousUploads().then((previous) => {
        if (settled || paused) return;
        if (previous.length) {
          tusUpload.resumeFromPreviousUpload(previous[0]);
          item.progress.label.textContent = 'Resuming\u2026';
        }
        tusUpload.start();
      }, () => {
        if (!settled && !paused) tusUpload.start();
      });
    }

    function pump() {
      while (active < MAX_PARALLEL && queue.length) {
        const job = queue.shift();
        active += 1;
        upload(job);
      }
    }

    function refreshHead() {
      resultsHead.hidden = results.children.length === 0;
    }

    function takeFiles(files) {
      const list = Array.from(files || []).filter(Boolean);
      if (!list.length) return;
      const resize = readResize();
      if (resize === null) return;
      const expires = expirySelect ? expirySelect.value : '';
      const single = list.length === 1;
      const batchTime = Date.now();
      const batch = document.createDocumentFragment();
      for (const [position, file] of list.entries()) {
        const item = buildPending(file);
        batch.append(item.card);
        if (file.size > config.maxSize) {
          const limit = config.maxSizeHuman || humanSize(config.maxSize);
          let actual = humanSize(file.size);
          let limitText = limit;
          if (actual === limit) {
            // just over the limit: both round to the same text, so give exact counts
            actual = `${file.size.toLocaleString('en')} bytes`;
            limitText = `${limit} (${config.maxSize.toLocaleString('en')} bytes)`;
          }
          fail(item, 'File too large', `\u201c${file.name}\u201d is ${actual}; the limit is ${limitText} per file.`);
          continue;
        }
        item.progress.cancel.onclick = () => {
          const index = queue.findIndex((job) => job.item === item);
          if (index > -1) queue.splice(index, 1);
          fail(item, 'Cancelled', 'The upload was cancelled.');
        };
        queue.push({ item, resize, expires, single, batch: batchTime, position });
      }
      results.prepend(batch);
      refreshHead();
      pump();
    }

    /* ---- sources: picker, drag & drop, paste ------------------------ */

    input.addEventListener('change', () => {
      const files = Array.from(input.files || []);
      input.value = '';
      takeFiles(files);
    });

    const hasFiles = (event) => {
      const types = event.dataTransfer && event.dataTransfer.types;
      return Boolean(types) && Array.from(types).includes('Files');
    };
    let dragDepth = 0;
    const setDragging = (on) => {
      dropZone.classList.toggle('is-dragover', on);
      document.body.classList.toggle('is-dragging', on);
    };

    document.addEventListener('dragenter', (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      dragDepth += 1;
      setDragging(true);
    });
    document.addEventListener('dragover', (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = 'copy';
    });
    document.addEventListener('dragleave', (event) => {
      if (!hasFiles(event)) return;
      dragDepth = Math.max(0, dragDepth - 1);
      if (dragDepth === 0) setDragging(false);
    });
    document.addEventListener('drop', (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      dragDepth = 0;
      setDragging(false);
      takeFiles(event.dataTransfer.files);
    });

    const pad = (n) => String(n).padStart(2, '0');
    function namePasted(file, index) {
      const generic = !file.name || /^image\.(png|jpe?g|gif|webp|bmp|avif)$/i.test(file.name);
      if (!generic) return file;
      const now = new Date();
      const stamp = `${now.getFullYear()}${pad(now.getMonth() + 1)}${pad(now.getDate())}-`
        + `${pad(now.getHours())}${pad(now.getMinutes())}${pad(now.getSeconds())}`;
      const ext = (file.type.split('/')[1] || 'bin').replace('jpeg', 'jpg').replace(/[^a-z0-9]/gi, '');
      const suffix = index ? `-${index + 1}` : '';
      return new File([file], `pasted-${stamp}${suffix}.${ext}`, { type: file.type, lastModified: file.lastModified });
    }

    document.addEventListener('paste', (event) => {
      const data = event.clipboardData;
      if (!data) return;
      let files = Array.from(data.files || []);
      if (!files.length && data.items) {
        files = Array.from(data.items)
          .filter((entry) => entry.kind === 'file')
          .map((entry) => entry.getAsFile())
          .filter(Boolean);
      }
      if (!files.length) return;
      event.preventDefault();
      takeFiles(files.map(namePasted));
    });

    clearButton.addEventListener('click', () => {
      const kept = loadEntries().length;
      if (kept && !window.confirm(`Forget the ${kept === 1 ? 'upload' : `${kept} uploads`} in this list? `
        + 'The files stay online, but this browser loses their delete links.')) return;
      for (const card of Array.from(results.children)) {
        const state = card.dataset.state;
        if (state === 'done' || state === 'error' || state === 'deleted') card.remove();
      }
      saveEntries([]);
      refreshHead();
    });

    /* ---- uploads kept from earlier visits --------------------------- */

    function restoreUploads() {
      const entries = loadEntries();
      saveEntries(entries);  // drops the expired ones for good
      const batch = document.createDocumentFragment();
      for (const entry of entries) {
        const card = buildCard(entry, { kind: kindOf(entry) });
        card.dataset.state = 'done';
        card.querySelector('.card__body').append(ownerActions(card, entry, { onRemoved: refreshHead }));
        batch.append(card);
      }
      results.append(batch);
      refreshHead();
    }

    restoreUploads();

    window.addEventListener('beforeunload', (event) => {
      if (active > 0 || queue.length > 0) {
        event.preventDefault();
        event.returnValue = '';
      }
    });

    window.addEventListener('popstate', () => {
      if (window.location.pathname === homePath) document.title = homeTitle;
    });

    window.pastefile = Object.freeze({ buildCard, upload: takeFiles });
  }

  const uploadForm = document.getElementById('upload-form');
  if (uploadForm) initUploadPage(uploadForm);
  const fullCard = document.querySelector('.result-card--full[data-filehash]');
  if (fullCard) initPreviewOwner(fullCard);
})();
