/**
 * Where the admin token is kept: this tab's sessionStorage (gone when the tab closes), never a
 * cookie, never a URL. Storage can be unavailable (privacy modes); the token then lives only
 * in memory for as long as the page does.
 */

const KEY = 'appvisor.adminToken';
let memory = '';

/** The stored token, or ''. */
export function loadToken() {
  try {
    return sessionStorage.getItem(KEY) ?? memory;
  } catch {
    return memory;
  }
}

/** @param {string} token */
export function saveToken(token) {
  memory = token;
  try {
    sessionStorage.setItem(KEY, token);
  } catch {
    // Kept in memory only.
  }
}

export function clearToken() {
  memory = '';
  try {
    sessionStorage.removeItem(KEY);
  } catch {
    // Nothing stored.
  }
}
