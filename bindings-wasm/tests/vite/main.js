// An application's entry point, as Vite bundles it: the package by its npm name.
import init, { Client } from 'hubbub-client';

init().then(() => {
  window.hubbub = { Client };
});
