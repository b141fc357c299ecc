/* pastefile front-end: uploads (picker, drag & drop, clipboard paste),
 * progress, result cards and copy buttons. Plain JS, no build step. */
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
      metaItem('time', 'Uploaded', data.time));
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
  /* Upload page                                                         */
  /* ------------------------------------------------------------------ */

  function initUploadPage(form) {
    const config = {
      url: form.getAttribute('action') || window.location.pathname,
      maxSize: parseInt(form.dataset.maxSize, 10) || Infinity,
      maxSizeHuman: form.dataset.maxSizeHuman || '',
      maxSide: parseInt(form.dataset.maxSide, 10) || null,
    };
    const input = document.getElementById('file-input');
    const dropZone = document.getElementById('drop-zone');
    const results = document.getElementById('results');
    const resultsHead = document.getElementById('results-head');
    const clearButton = document.getElementById('clear-results');
    const widthInput = document.getElementById('w');
    const heightInput = document.getElementById('h');
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

    function succeed(item, data, single) {
      const card = buildCard(data, { kind: kindOf(data) });
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
      const { item, resize, single } = job;
      const body = new FormData();
      body.append('file', item.file, item.file.name || 'upload');
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
          succeed(item, data, single);
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
      const single = list.length === 1;
      const batch = document.createDocumentFragment();
      for (const file of list) {
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
        queue.push({ item, resize, single });
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
      for (const card of Array.from(results.children)) {
        const state = card.dataset.state;
        if (state === 'done' || state === 'error') card.remove();
      }
      refreshHead();
    });

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
})();
