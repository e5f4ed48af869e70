import { keepToken } from "./api.js";

document.getElementById("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const value = document.getElementById("token").value;
  const response = await fetch("/v1/runs", { headers: { Authorization: `Bearer ${value}` } });
  if (response.ok) {
    keepToken(value);
    location.assign("/");
  } else {
    document.getElementById("login-error").textContent = "The server refused this token.";
  }
});
